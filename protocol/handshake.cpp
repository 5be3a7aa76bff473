// placeholder: filled in by this work
