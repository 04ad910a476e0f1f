"""``tfdenoise search [MODEL] --target gap9 [...]``: the lowest-energy deployment within budgets,
for a denoiser or a keyword spotter.

Thin: flags -> :func:`tfdenoise.search.search` and :func:`tfdenoise.search_output.write_outputs`.
Exit code 4 when no candidate meets the budgets and the quality bound (the table, plot and
candidates are still written).
"""
from __future__ import annotations

from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """examples:
  tfdenoise search                                   # the default denoiser on gap9
  tfdenoise search lstm128 --also runs/prune/lstm128_s25 --also runs/qat/den8_s2z -o out/search
  tfdenoise search --family kws --target stm32f767 --also runs/qat/kws_b4_s2 \\
      --max-accuracy-loss 1 --max-frr-increase 10 --budget-param-kb 200 -o out/search_kws"""

#: Options of one family only (dest -> flag), refused for the other.
DENOISER_ONLY = {"max_pesq_loss": "--max-pesq-loss", "pairs": "--pairs", "jobs": "--jobs"}
KWS_ONLY = {"max_accuracy_loss": "--max-accuracy-loss", "max_frr_increase": "--max-frr-increase",
            "data": "--data", "noise": "--noise", "hours": "--hours"}


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search precision x QAT / pruned checkpoints x promotion x L3 x "
                                      "operating point for the lowest-energy deployment within budgets",
                       formatter_class=HelpFormatter, epilog=EXAMPLE,
                       description="Export a checkpoint (and each --also checkpoint) under every recipe "
                                   "of its family (denoiser: fp16/int8 per layer group, each with int8 also "
                                   "as std3 + asymmetric ranges, @asym; KWS: fp32, int8, "
                                   "int8 with an fp32 softmax at three weight granularities; QAT: its "
                                   "trained widths), price each file under every promotion policy, L3 "
                                   "memory and operating point of the board, measure quality only for the "
                                   "cost-Pareto files within the budgets (denoiser: PESQ/STOI in LiteRT; "
                                   "KWS: accuracy and FRR at 1 FA/h as `kws evaluate`), and write the "
                                   "Pareto table, plot, all candidates and the chosen recipe, .tflite and "
                                   "hardware report.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="checkpoint or run folder, or variant name (default: the family's shipped model)")
    p.add_argument("--family", choices=("denoiser", "kws"), default=None,
                   help="model family (default: MODEL's; without MODEL the denoiser)")
    p.add_argument("--target", default="gap9", help="board name or .toml file")
    p.add_argument("--also", action="append", default=[], metavar="CHECKPOINT",
                   help="another checkpoint of the same family to search too (repeatable): a QAT one "
                        "exports with its trained weight widths, a pruned one with every recipe")
    _add_budgets(p)
    den = p.add_argument_group("denoiser quality")
    den.add_argument("--max-pesq-loss", type=float, default=None, metavar="D",
                     help="max PESQ below the mixed FP16-INT8 recipe's on the pairs (default 0.03)")
    den.add_argument("--pairs", default=None, metavar="DIR",
                     help="noisy/ + clean/ pairs folder to score on (default: the bundled pairs)")
    den.add_argument("--jobs", type=int, default=None, metavar="N", help="scoring processes")
    _add_kws(p)
    p.add_argument("--score-all", action="store_true",
                   help="score every file within the budgets, not only the cost-Pareto ones (fuller "
                        "fronts, slower)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder of the exports, the quality scores and decoded audio (default: OUT/cache); "
                        "none depends on the board, so searches on several boards may share one")
    p.add_argument("-o", "--out", default="search", help="output folder")
    add_json(p, "the search result")
    p.set_defaults(func=run)


def _add_budgets(p) -> None:
    g = p.add_argument_group("budgets (a candidate over one is dropped; the summary counts why)")
    g.add_argument("--budget-ms", type=float, default=None, metavar="MS",
                   help="max latency in ms: network per inference (denoiser), per decision with the "
                        "feature frame (KWS); every candidate must also keep up with the hop")
    g.add_argument("--budget-uj", type=float, default=None, metavar="UJ",
                   help="max energy in uJ per inference (denoiser) or per decision (KWS)")
    g.add_argument("--budget-l2-kb", type=float, default=None, metavar="KB",
                   help="max L2 / on-chip SRAM the memory plan uses, in kB (1 kB = 1024 B)")
    g.add_argument("--budget-param-kb", type=float, default=None, metavar="KB",
                   help="max parameter bytes as stored in the file, in kB (1 kB = 1024 B)")


def _add_kws(p) -> None:
    g = p.add_argument_group("keyword-spotting quality (tfdenoise kws evaluate)")
    g.add_argument("--max-accuracy-loss", type=float, default=None, metavar="POINTS",
                   help="max test accuracy below the float model's, in percentage points (default 1.0)")
    g.add_argument("--max-frr-increase", type=float, default=None, metavar="PCT",
                   help="max FRR at 1 false alarm per hour above the float model's, in percent of it "
                        "(default 10)")
    g.add_argument("--data", default=None, metavar="DIR",
                   help="clips folder: test split scored, training split calibrates INT8 (default: "
                        "the checkpoint's training data or ../shared/data/kws/fsdd)")
    g.add_argument("--noise", default=None, metavar="DIR",
                   help="noise recordings of the DET stream (default: ../shared/data/noise when it exists)")
    g.add_argument("--hours", type=float, default=None, metavar="H",
                   help="DET stream length in hours (default 1, as kws evaluate; 0: accuracy only)")


def _checked_family(args):
    """The family searched; options of the other family are one-line errors."""
    from tfdenoise.errors import InputError
    from tfdenoise.search_space import detect_family
    from tfdenoise.vocab import ModelFamily

    family = ModelFamily(args.family) if args.family else detect_family(args.model)
    other = KWS_ONLY if family is ModelFamily.DENOISER else DENOISER_ONLY
    given = [flag for dest, flag in other.items() if getattr(args, dest) is not None]
    if given:
        raise InputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                         f"{'keyword spotting' if family is ModelFamily.DENOISER else 'denoisers'}; "
                         f"this search is over {family.value} models")
    return family


def _input_trees(sources, scorer, family, calib_data: str | None) -> list[Path]:
    """Every folder the search reads: the checkpoints (MODEL, --also), the pairs (denoiser) or
    the clips, the noise and each checkpoint's calibration clips (KWS)."""
    from tfdenoise.modelref import resolve
    from tfdenoise.vocab import ModelFamily

    trees = [Path(d) for s in sources for d in resolve(s.path, family).folders]
    if family is ModelFamily.DENOISER:
        return trees + [Path(scorer.pairs)]
    from tfdenoise.search_kws import calibration_folder

    r = scorer.request
    return trees + [Path(r.data), *([Path(r.noise)] if r.noise else []),
                    *(Path(calibration_folder(s.path, calib_data)) for s in sources)]


def run(args) -> int:
    from tfdenoise.errors import DoesNotFitError
    from tfdenoise.fileio import check_outputs
    from tfdenoise.search import Budgets, QualityBound, default_scorer, load_sources, search
    from tfdenoise.search_output import write_outputs

    budgets = Budgets(args.budget_ms, args.budget_uj, args.budget_l2_kb, args.budget_param_kb)
    budgets.check()
    family = _checked_family(args)
    given = {k: getattr(args, k) for k in ("max_pesq_loss", "max_accuracy_loss", "max_frr_increase")}
    bound = QualityBound(family, **{k: v for k, v in given.items() if v is not None})
    bound.check()
    sources = load_sources(args.model, family, args.also)  # bad checkpoints fail before any data is read
    out = Path(args.out)
    cache = Path(args.cache) if args.cache is not None else out / "cache"
    scorer = default_scorer(family, str(cache), pairs=args.pairs, jobs=args.jobs, data=args.data,
                            noise=args.noise, hours=args.hours, checkpoint=sources[0].path)  # checks them
    json_path = json_files(args.json)
    check_outputs(json_path, folders=[out, cache], input_trees=_input_trees(sources, scorer, family, args.data))
    result = search(args.model, family=family, board=args.target, out_dir=out, also=args.also, budgets=budgets,
                    bound=bound, scorer=scorer, calib_data=args.data, cache_dir=cache, score_all=args.score_all)
    paths = write_outputs(result, out)
    lines = human(args.json)
    print(paths["markdown"].read_text(encoding="utf-8"), file=lines)
    print(f"scored {result['scored_now']} new file(s); wrote " + ", ".join(str(p) for p in paths.values()),
          file=lines)
    emit_json(result, args.json)
    if result["chosen"] is None:
        raise DoesNotFitError(f"no configuration of {len(result['candidates'])} meets the budgets and the "
                              f"quality bound (table in {paths['markdown']})")
    return 0
