#!/usr/bin/env python3
"""Checks the emulated board's screen against the picture petal reproduces, standard library only.

    compare-screen.py screen.ppm expected.png [--background 000000] [--max 8] [--mean 0.5]
    compare-screen.py --png-whole FILE...     # each file decodes as a whole PNG (CRC, zlib)

The frame shows a picture with `fit = "fit"` and `filter = "nearest"` on a black background:
scaled by the largest whole factor that fits the screen, centred. This builds that screen from
`expected.png` (the gallery's picture painted again by `petal generate --from` on the host)
and compares every pixel of the screendump with it. Tolerance: the host (x86) and the board
(aarch64, under emulation) run different float kernels, so a colour may move by a few levels;
a wrong picture, a shifted or a badly scaled one moves most pixels by far more.
Exit 0 when within tolerance, 1 otherwise; one line of figures either way.
"""
import struct
import sys
import zlib

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from ppm2png import read_ppm  # noqa: E402


def read_png(path):
    """(width, height, channels, rows of bytes) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG (signature)")
    pos, idat, header, ended = 8, [], None, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError(f"{path}: truncated chunk header at byte {pos}")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError(f"{path}: truncated {kind!r} chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"{path}: bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = True
            break
        pos += 12 + length
    if header is None or not ended:
        raise ValueError(f"{path}: no IHDR or no IEND (cut short?)")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA, non-interlaced (depth {depth}, colour {colour})")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            a = row[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + a) & 255
            elif kind == 2:
                row[i] = (row[i] + b) & 255
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif kind != 0:
                raise ValueError(f"{path}: unknown filter {kind} in row {y}")
        rows.append(bytes(row))
        previous = row
    return width, height, channels, rows


def compare(screen_path, png_path, background, tol_max, tol_mean):
    sw, sh, screen = read_ppm(screen_path)
    pw, ph, ch, rows = read_png(png_path)
    scale = max(1, min(sw // pw, sh // ph))
    ox, oy = (sw - pw * scale) // 2, (sh - ph * scale) // 2
    worst, total, far = 0, 0, 0
    for y in range(sh):
        py = (y - oy) // scale
        inside_y = 0 <= y - oy < ph * scale
        for x in range(sw):
            i = (y * sw + x) * 3
            if inside_y and 0 <= x - ox < pw * scale:
                j = ((x - ox) // scale) * ch
                want = rows[py][j : j + 3]
            else:
                want = background
            for k in range(3):
                d = abs(screen[i + k] - want[k])
                total += d
                worst = max(worst, d)
                far += d > tol_max
    mean = total / (sw * sh * 3)
    ok = worst <= tol_max and mean <= tol_mean
    print(
        f"screen {sw}x{sh}, picture {pw}x{ph} x{scale} at ({ox},{oy}): max |diff| {worst} "
        f"(tol {tol_max}), mean {mean:.3f} levels (tol {tol_mean}) -> {'ok' if ok else 'DIFFERENT'}"
    )
    return ok


def main(argv):
    if argv and argv[0] == "--png-whole":
        bad = 0
        for path in argv[1:]:
            try:
                read_png(path)
            except (ValueError, OSError, zlib.error) as e:
                print(f"not a whole PNG: {e}")
                bad += 1
        print(f"{len(argv) - 1 - bad} of {len(argv) - 1} files are whole PNGs")
        return 0 if bad == 0 and len(argv) > 1 else 1
    args, opts = [], {"--background": "000000", "--max": "8", "--mean": "0.5"}
    it = iter(argv)
    for a in it:
        if a in opts:
            opts[a] = next(it)
        else:
            args.append(a)
    if len(args) != 2:
        sys.exit(__doc__)
    bg = bytes.fromhex(opts["--background"])
    try:
        ok = compare(args[0], args[1], bg, int(opts["--max"]), float(opts["--mean"]))
    except (ValueError, OSError, zlib.error) as e:
        print(f"cannot compare: {e}")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
