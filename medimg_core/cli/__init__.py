"""The `medimg` command (`python -m medimg_core`): the parser of every sub-command, their runs, predict's
output formats, `ship`, honest `--record`s and `audit`.

Layer 7, the top of the library: may import every other layer; nothing in `medimg_core` imports it.
"""
