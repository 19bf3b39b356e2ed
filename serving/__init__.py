"""After the search: the tuned summarizer exported (ONNX), served (ONNX Runtime, Triton) and
metered per request. Reads a study folder's `best_model/`; imports core, meter and trainables."""
