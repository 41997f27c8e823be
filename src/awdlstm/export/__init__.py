"""Ways out of the toolkit: model folders (train/model_folder.py) and ONNX (onnx_model.py)."""
