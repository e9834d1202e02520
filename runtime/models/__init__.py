"""Models the runtime can execute: memplan graphs plus weights, inputs and numpy references."""
