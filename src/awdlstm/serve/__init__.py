"""``awdlstm serve``: JSON over HTTP (FastAPI on uvicorn) with request batching and a page."""
