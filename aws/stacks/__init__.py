"""The stack and the constructs it is made of, one module per part of the architecture."""
