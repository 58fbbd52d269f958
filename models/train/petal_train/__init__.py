"""petal's model recipe: prepare data, train a small DDPM, export to ONNX, quantize, evaluate."""
