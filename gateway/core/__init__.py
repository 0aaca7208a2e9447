"""What every layer stands on: JSON-RPC framing, errors, protocol eras, names, logs and tracing hooks.

Pure modules: no HTTP, no upstream, no session state. Translate, the aggregating gateway, the transports and the
upstreams all import from here; nothing here imports from them.
"""
