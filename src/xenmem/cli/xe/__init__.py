"""`xe`: the XenServer/XCP-ng command line for the memory workflow, over the XenAPI."""
