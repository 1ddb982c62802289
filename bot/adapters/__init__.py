"""Platform adapters: pure converters plus a thin runner each (see bot.channels)."""
