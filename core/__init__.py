"""Small pieces every app shares. Imports nothing of the project: the bottom layer."""
