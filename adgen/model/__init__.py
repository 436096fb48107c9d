"""Model adapter: finding, converting and loading base models and LoRA versions."""
