"""The judging pool of each topic (TREC style), and a check of qrels.tsv against it.

    .venv/bin/python benchmarks/relevance/pool.py [--db URL] [--depth 40] [--write]

Pool = the union of the top ``depth`` papers of every ranker evaluate.py runs, plus every
paper the hand-written patterns below find in its title or abstract. Every pooled paper must
have been read and judged: the script lists pooled papers that qrels.tsv lacks (a ranker
changed and found something new: read it, judge it, add a row) and, with ``--write``, adds a
grade-0 row for each pooled paper that the exhaustive pass judged not relevant, so the file
shows what was looked at and rejected. It never assigns a grade above 0: grades come from
reading (README.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402  (the sibling script: same catalog, same rankers)

# Keyword and synonym patterns written by hand per topic, to pool papers no ranker returns.
PATTERNS: dict[str, str] = {
    "GNN": r"graph neural|\bgnns?\b|graph convolution|message[- ]passing|hypergraph|sheaf|"
           r"node classification|link prediction|node embedding|graph attention",
    "PINNs": r"physics[- ]informed|\bpinns?\b|pde residual|governing equation",
    "INR": r"implicit neural|neural field|\binrs?\b|nerf|radiance field|signed distance|"
           r"unsigned distance|\bsdf|\budf|implicit (surface|function|field)|coordinate",
    "NAS": r"architecture search|\bnas\b|darts|supernet|super-network|zero-cost|search space",
    "optimal transport": r"optimal transport|wasserstein|sinkhorn|schr.dinger|monge|brenier",
    "causal discovery": r"causal|\bdags?\b|acyclic|notears|structure learning",
    "neural operators": r"operator|deeponet|function spaces?|pde|partial differential",
    "differentiable rendering": r"render|inverse graphics|ray[- ]trac|rasteri",
    "low-bit networks": r"quantiz|quantis|binar|low[- ]bit|bit[- ]width|low[- ]precision|"
                        r"\bint[48]\b|\d-bit|one[- ]bit|mixed[- ]precision",
    "learning to sort": r"sort|permutation|ranking|top-k|ordering",
    "infinite-width networks": r"infinite[- ]width|infinitely wide|\bntk\b|neural tangent|nngp|"
                               r"wide (neural )?networks?|mean[- ]field|lazy|kernel regime|"
                               r"large width|width",
    "GFlowNets": r"gflownet|generative flow network|flow network",
    "MoE": r"expert|mixture|routing|router|gating|conditional computation|sparsely activated",
    "uncertainty calibration": r"calibrat|uncertaint|confidence|conformal",
    "weight-space learning": r"weight space|hypernetwork|metanetwork|parameters of (other )?"
                             r"neural|network weights|parameter prediction|weights? (as|of) "
                             r"(input|other)|symmetr",
    # Issue 13: the topics added for the dev/test split, patterns written with their
    # definitions before any ranker ran on them.
    "meta-learning / few-shot learning": r"meta-?learn|few-shot|few shot|maml|learning to learn|"
                                         r"episodic|prototyp|neural process",
    "Bayesian deep learning / uncertainty": r"bayesian|uncertaint|calibrat|posterior|variational|"
                                            r"conformal|ensemble|prediction set",
    "knowledge distillation and model compression": r"distill|compress|quantiz|quantis|prun|"
                                                    r"low-rank|codebook|binar|lightweight|"
                                                    r"bit-width",
    "contrastive self-supervised learning": r"contrastive|infonce|positive pair|negative (pair|"
                                            r"sample)|simclr|moco",
    "equivariance and symmetry in neural networks": r"equivarian|invarian|symmetr|permutation|"
                                                    r"group",
    "continual learning and catastrophic forgetting": r"continual|catastrophic|lifelong|"
                                                      r"incremental|forgetting|streaming",
    "pruning, sparsity, lottery tickets": r"prun|sparsit|sparse|lottery|ticket",
    "SNNs": r"spik|neuromorphic",
    "neural ODEs": r"ordinary differential|\bode\b|continuous-depth|continuous-time|"
                   r"neural differential|diffusion (equation|process)",
    "graph learning for recommender systems": r"recommend|collaborative filtering|"
                                              r"implicit feedback|user-item",
    "deep learning for PDEs": r"partial differential|\bpdes?\b|physics-informed|pinn|navier|"
                              r"operator learning|neural operator|fluid|equation",
    "explainability for graph neural networks": r"explain|explanation|interpretab",
    "machine learning for wireless communications": r"wireless|antenna|beamform|mimo|channel|"
                                                    r"signal",
    "deep learning for weather": r"weather|climate|forecast|atmosph|precipitation",
    "quantization of LLMs": r"quantiz|large language|llm|int4|int8",
    "transformers in vision": r"vision transformer|\bvit\b|swin|transformer",
    "HPO": r"hyperparameter|hyper-parameter|learning rate|bayesian optimi|learning curve|tuning",
    "normalizing flows / invertible networks": r"normalizing flow|invertib|reversible|bijective|"
                                               r"flow",
    "domain generalization / OOD": r"out-of-distribution|ood|domain generali|distribution shift|"
                                   r"spurious|unseen domain",
    "adversarial robustness and verification": r"adversarial|robust|attack|verification|certif|"
                                               r"lipschitz|defen",
    "scaling laws": r"scaling law|power law|power-law|compute-optimal|scaling",
    "loss landscape": r"landscape|sharp|flat minim|mode connectivity|hessian|curvature",
    "mechanistic interpretability": r"interpretab|reverse engineer|circuit|mechanis",
    "geometric deep learning": r"geometric|graph|mesh|manifold|hyperbolic|point cloud|equivarian|"
                               r"sheaf|simplicial|topolog",
    "AI for science": r"physic|chemi|molecul|drug|biolog|protein|scien|epidem|pde|material|fluid|"
                      r"cosmolog|battery|quantum",
    "differentiable programming": r"differentiable|automatic differentiation|autodiff|"
                                  r"end-to-end differentiable|relaxation",
    "efficient deep learning on edge devices": r"edge|mobile|embedded|device|latency|hardware|"
                                               r"lightweight|tiny|on-device|resource-constrained",
    "understanding why deep networks generalize": r"generali[sz]",
    "how transformers learn in context": r"in-context|in context|prompt|prior-data fitted|pfn",
    "straight-through estimator": r"straight-through|straight through|\bste\b|surrogate gradient|"
                                  r"surrogate",
    "Adam and adaptive optimizers": r"\badam|adagrad|rmsprop|adaptive (gradient|optimi)|"
                                    r"second-order|second order|optimizer",
    "message passing": r"message[- ]passing|mpnn|aggregat|over-?smooth|over-?squash|rewir",
    "point clouds": r"point cloud|point-cloud|lidar|\bpoints?\b",
    "NeRF, 3D reconstruction": r"nerf|radiance|reconstruct|view synthesis|novel view|multi-view|"
                               r"signed distance|unsigned distance|\bsdf|\budf|render",
    "metric learning": r"metric learning|triplet|siamese|embedding space|distance",
    "tabular deep learning": r"tabular",
    "self supervised learning": r"self-supervised|self supervised|unsupervised|pretext|"
                                r"contrastive|pre-train",
    "equivarient networks": r"equivarian|invarian|symmetr",
    "bilevel optimization": r"bi-?level|implicit differentiation|inner (problem|loop)|"
                            r"upper-level|lower-level",
    "protein folding": r"protein|fold",
    "memory-augmented networks (NTM)": r"memory|turing machine|\bntm\b|key-value",
    "dynamic graphs, temporal GNNs": r"dynamic graph|temporal graph|time-varying|evolving|"
                                     r"dynamic network|temporal",
    "knowledge distilation": r"distill|teacher|student",
    "medical image segmentation": r"segment|medical|mri|\bct\b|biomedical|vessel",
    "crop yield prediction": r"crop|agricult|farm|yield|soil|plant",
    "speech recognition": r"speech|asr\b|audio|acoustic|spoken|voice",
    # Issue 13, round two: test-B topics, patterns written with their definitions for the
    # second, pattern-pooled read (no ranker has run on these topics).
    "diffusion models": r"diffusion|denois|score-based|ddpm|stable diffusion|flow network",
    "deep RL": r"reinforcement|policy|reward|bandit|agent|actor-critic|markov decision",
    "GNN expressivity / WL test": r"weisfeiler|lehman|\bwl\b|expressiv|isomorphi|universal",
    "oversmoothing and heterophily": r"over-?smooth|over-?squash|heterophil|homophil|rewir|deeper|"
                                     r"long-range",
    "text-to-image generation": r"text-to-image|text prompt|image generation|image synthesis|"
                                r"controlnet|stable diffusion",
    "activation functions": r"activation function|activations? (unit|layer)|relu|gelu|silu|"
                            r"sigmoid|tanh|nonlinearit|periodic",
    "BatchNorm, normalization layers": r"normali[sz]ation|batch ?norm|layer ?norm|group ?norm|"
                                       r"standardi[sz]ation|\bbn\b",
    "federated learning": r"federated|fedavg|client|decentrali",
    "object detection": r"detect|bounding box|yolo|coco|\bmap\b",
    "hyperbolic neural netwroks": r"hyperbolic|poincar|lorentz|hyperspher",
    "ML systems: GPU memory, distributed training": (
        r"gpu memory|memory consumption|memory cost|out-of-core|offload|distributed training|"
        r"cuda|throughput|memory wall|i/o|code generator"),
    "second-order optimization (Hessian, K-FAC)": r"hessian|second-order|second order|newton|"
                                                  r"fisher|curvature|k-fac|kfac|gauss-newton",
    "node embeddings like node2vec": r"embedding|random walk|node2vec|deepwalk|"
                                     r"network representation|representation learning on",
    "topological data analysis": r"topolog|homolog|persistent|simplicial|cell complex|sheaf|betti",
    "RNNs and SSMs": r"recurrent|\brnns?\b|lstm|gru|state[- ]space|\bssms?\b|mamba|\bs4\b|"
                     r"through time",
    "drug discovery & molecules": r"molecul|drug|protein|ligand|chemical|\bdna\b|\brna\b|"
                                  r"force field",
    "image restoration (deblurring, super-resolution)": (
        r"restor|deblur|super-resolution|super resolution|denois|inpaint|low-light|enhance|"
        r"rescal"),
    "multi-task learning": r"multi-task|multitask|multiple tasks|task generali",
    "XAI, counterfactual explanations": r"explain|explanation|interpretab|counterfactual|xai|"
                                        r"transparen",
    "inverse problems": r"inverse|ill-posed|reconstruct|parameter (inference|estimation)|recover|"
                        r"calibration",
    "implicit layers / DEQ": r"equilibrium|fixed[- ]point|implicit|deq\b|"
                             r"implicit function theorem|optimization layer",
    "LLMs": r"large language|\bllms?\b|language model|llama|gpt|mistral|bert",
    "privacy attacks on ML models": r"privacy|private|stealing|membership|leak|attack",
    "robot learning": r"robot|grasp|locomotion|manipulat|slam|navigation|embodied",
    "curriculum learning": r"curricul|easy-to-hard|ordered learning",
    "symbolic regresion, equation discovery": r"symbolic|equation discovery|governing equation|"
                                              r"analytic formula|closed-form",
    "training dynamics": r"dynamics|training trajector|gradient flow|lazy|grokking|"
                         r"edge of stability|neural tangent|feature learning|during training",
    "neural nets for combinatorial optimization": (
        r"combinatorial|travell?ing salesman|\btsp\b|routing problem|sorting|matching|"
        r"assignment|discrete optimi"),
    "stock price forecasting": r"stock|financ|market|trading|price",
    "single-cell RNA-seq": r"single-cell|scrna|transcript|gene expression|cell type",
    "EEG decoding / brain-computer interfaces": r"\beeg\b|brain-computer|\bbci\b|electroenceph|"
                                                r"neural decoding|brain signal",
}


def pools(depth: int, db: str | None, rank_test: bool = False,
          ) -> tuple[dict[str, set[str]], dict[str, dict[str, int]], dict[str, str]]:
    papers, engine = evaluate.load_catalog(db)
    titles = {p.id: p.title for p in papers}
    vocabulary = evaluate.Vocabulary.load()
    rankers = evaluate.build_rankers(papers, engine, vocabulary, semantic=True)
    qrels = evaluate.load_qrels()
    pooled: dict[str, set[str]] = {}
    for topic, split in evaluate.load_splits().items():
        # Test and test-B topics are pooled by their patterns alone unless asked: looking at
        # what the rankers return for them is what the split forbids while tuning.
        ranked = split == "dev" or rank_test
        pool = {pid for rank in rankers.values() for pid in rank(topic)[:depth]} if ranked \
            else set()
        pattern = re.compile(PATTERNS[topic], re.IGNORECASE)
        pool |= {p.id for p in papers if pattern.search(f"{p.title} {p.abstract}")}
        pooled[topic] = pool
    return pooled, qrels, titles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL with the catalog and embeddings cached")
    parser.add_argument("--depth", type=int, default=40, help="top papers pooled per ranker")
    parser.add_argument("--write", action="store_true",
                        help="add grade-0 rows for pooled papers judged not relevant")
    parser.add_argument("--rank-test", action="store_true",
                        help="pool the test topics with the rankers too (only after freezing)")
    args = parser.parse_args(argv)
    pooled, qrels, titles = pools(args.depth, args.db, args.rank_test)
    path = evaluate.HERE / "qrels.tsv"
    listed = {(line.split("\t")[0], line.split("\t")[1])
              for line in path.read_text("utf-8").splitlines()[1:] if line.strip()}
    added: list[str] = []
    for topic, pool in pooled.items():
        relevant = {pid for pid, g in qrels.get(topic, {}).items() if g > 0}
        outside = relevant - pool
        print(f"{topic:26s} pool {len(pool):3d}  relevant {len(relevant):3d}  "
              f"relevant outside the pool {len(outside)}")
        for pid in sorted(outside):
            print(f"    not pooled: {titles[pid]}")
        added += [f"{topic}\t{pid}\t0\tpooled; judged not relevant"
                  for pid in sorted(pool) if (topic, pid) not in listed]
    if args.write and added:
        with path.open("a", encoding="utf-8") as out:
            out.write("".join(f"{row}\n" for row in added))
        print(f"added {len(added)} grade-0 rows to {path.name}")
    elif added:
        print(f"{len(added)} pooled papers have no row (all judged 0 in the exhaustive pass; "
              f"--write adds them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
