"""The web app over a workspace (``tabpipe ui``) and the prediction page of ``tabpipe serve``."""
