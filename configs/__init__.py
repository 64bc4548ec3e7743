"""Run configs (`get_config(arg)`, big_vision style); `--config=configs/<name>.py[:arg]`."""
