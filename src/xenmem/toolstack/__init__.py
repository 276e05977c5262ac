"""What xapi and xenopsd decide: VM lifecycle, admission, placement, live memory state."""
