"""Ways out of the toolkit: model folders (checkpoints/model_folder.py) and ONNX (onnx_model.py)."""
