"""WordLlama static embeddings: the torch-free encoder that was measured for issue 13.

    pip install wordllama   # not a dependency of the project

WordLlama (l2_supercat, 256 dimensions) averages the static embeddings of a text's tokens: no
torch, a paper in about a millisecond, weights inside the ``wordllama`` wheel. On the dev topics
it did not earn a place in the ranking (README.md: any weight given to it lowered the dev
objective), so the project does not depend on it; ``evaluate.py`` measures it when installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

STATIC = "wordllama-l2-supercat-256"


class StaticEncoder:
    """WordLlama (l2_supercat, 256 dimensions): the mean of the text's token embeddings. The
    weights and tokenizer ship inside the ``wordllama`` wheel; they are read from there directly
    (wordllama 0.4's own loader looks for the tokenizer in the wrong folder and then downloads)."""

    name = STATIC
    dimension = 256

    def __init__(self) -> None:
        import numpy as np
        import wordllama
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = Path(wordllama.__file__).parent
        self._tokenizer = Tokenizer.from_file(
            str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))
        self._table = np.ascontiguousarray(table["embedding.weight"], dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(
                list(texts), add_special_tokens=False)):
            if encoding.ids:
                out[row] = self._table[np.asarray(encoding.ids)].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)
