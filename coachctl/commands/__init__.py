"""Thin commands: parse options, call the engine, render."""
