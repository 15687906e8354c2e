"""Deployment: ONNX export of an ensemble and inference on onnxruntime."""
