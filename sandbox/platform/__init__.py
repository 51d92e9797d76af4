"""Where and how the stack's servers run: processes, the network, the state file, the two
runtimes (native, Compose) and the one component lifecycle. It knows no AWS part."""
