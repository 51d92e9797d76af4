"""One module or package per AWS part of the guidance, each the local stand-in for it."""
