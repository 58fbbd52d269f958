fn main() {
    let _ = tract_onnx::onnx();
}
