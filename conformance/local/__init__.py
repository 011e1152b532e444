"""The embedded default: real llama.cpp servers on 127.0.0.1 serving SmolLM2-135M-Instruct."""
