"""The language server: live diagnostics, shapes as inlay hints, hover, completion,
go-to-definition and the layer outline for spec files (``archspec lsp``; needs the
``lsp`` extra: pygls and lsprotocol). Torch-free like ``archspec check``."""
