"""The report's robustness section and findings: each model's label consistency under spelling perturbations
(results.json's ``robustness``), and what compression changed in it against the teacher."""

from __future__ import annotations

from distilora.render import formatting as fmt
from distilora.render.document import Block, Table
from distilora.report.context import ReportContext
from distilora.report.labels import accuracy_name
from distilora.results import Robustness, RunResults


def measured(ctx: ReportContext) -> dict[str, Robustness]:
    """The models whose robustness the run measured, in the run's order."""
    return {name: entry.robustness for name, entry in ctx.models.items() if entry.robustness is not None}


def robustness_blocks(ctx: ReportContext) -> list[Block]:
    """A summary table and a table of consistency per perturbation kind; nothing for a run without the measure."""
    scores = measured(ctx)
    if not scores:
        return []
    first = next(iter(scores.values()))
    kinds = list(first.kinds)
    decided = "decided set of labels" if ctx.multi_label else "decided label"
    summary = Table(
        ["model", "consistency [95 % CI]", "test macro-F1 clean", "perturbed (mean)",
         f"test {accuracy_name(ctx)} clean", "perturbed (mean)"],
        [[name, fmt.share(r.consistency), fmt.num(r.clean_macro_f1), fmt.num(r.macro_f1), fmt.num(r.clean_accuracy),
          fmt.num(r.accuracy)] for name, r in scores.items()],
        caption=f"Consistency: the share of test items whose {decided} (calibrated, as served) no perturbation "
                "changed (Wilson 95 % CI); scores on the perturbed copies are the mean over the kinds.")
    per_kind = Table(
        ["model", *kinds],
        [[name, *(fmt.share(r.kinds[k].consistency) if k in r.kinds else fmt.DASH for k in kinds)]
         for name, r in scores.items()],
        caption="Consistency per perturbation kind (Wilson 95 % CIs); texts changed per kind: "
                + ", ".join(f"{k} {first.kinds[k].changed_texts}" for k in kinds) + ".")
    method = (f"Perturbed copies of the test split, one per kind, seed {first.seed}, about "
              f"{(first.word_share or 0) * 100:.0f} % of the words a kind can change changed (at least one); the same "
              "copies for every model. Kinds: leet (look-alike digits and symbols), repeat (a letter written again), "
              "swap (neighbouring characters exchanged), drop (a letter left out), case (capitals or alternating "
              "case), spaced (a space inside a word), joined (the space between two words removed).")
    return [method, summary, per_kind]


def robustness_findings(ctx: ReportContext) -> list[str]:
    """What compression broke in robustness: each other model's consistency against the teacher's, and the kind
    it lost most on."""
    scores, teacher = measured(ctx), ctx.teacher
    if teacher not in scores or scores[teacher].consistency is None:
        return []
    base = scores[teacher]
    sentences = []
    for name, r in scores.items():
        if name == teacher or r.consistency is None:
            continue
        d = r.consistency.estimate - base.consistency.estimate
        apart = r.consistency.high < base.consistency.low or r.consistency.low > base.consistency.high
        verdict = ("the Wilson intervals do not overlap" if apart
                   else "the Wilson intervals overlap: no clear difference on this test set")
        drops = {k: base.kinds[k].consistency.estimate - s.consistency.estimate for k, s in r.kinds.items()
                 if k in base.kinds and s.consistency and base.kinds[k].consistency}
        worst = max(drops, key=drops.get) if drops else None
        lost = (f"; it loses most on {worst} ({drops[worst] * 100:.1f} points below the teacher)"
                if worst and drops[worst] > 0 else "")
        sentences.append(f"Robustness: {name} keeps its decision under every spelling perturbation on "
                         f"{fmt.share(r.consistency)} of test items, the teacher on {fmt.share(base.consistency)} "
                         f"({d * 100:+.1f} points; {verdict}){lost}.")
    return sentences


def augmentation_line(results: RunResults) -> str:
    """The Method section's line on training augmentation."""
    a = results.augmentation
    if a is None:
        return "Augmentation: none (the models trained on the training split as read)."
    return (f"Augmentation: one perturbed copy (same label) of a seeded {(a.rate or 0) * 100:.0f} % of the training "
            f"rows ({', '.join(a.kinds)}; one kind drawn per text, about {(a.word_share or 0) * 100:.0f} % of its "
            f"words changed; seed {a.seed}), added once before training: {a.rows_added} rows added, and every route "
            "trained on them (the teacher's targets for distillation included).")
