"""vtb_bringup: the command line, the demo, configuration and launch files."""
