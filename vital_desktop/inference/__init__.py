"""Local AI runtime: llama.cpp text generation, ONNX image classification, prompt rendering."""
