"""An AUTOMATIC1111-compatible REST API under ``/sdapi/v1/``: existing tools (Open WebUI, SillyTavern, the
``webuiapi`` package, bots and scripts) drive cauldrond as they drive A1111. Every txt2img request becomes an
experiment of kind ``a1111`` in the same durable queue, with the same auth and limits as the RPC
(docs/a1111-api.md)."""

PREFIX = "/sdapi/v1/"
