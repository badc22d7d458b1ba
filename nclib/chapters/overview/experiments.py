"""Chapter 00: the sizes the lecture quotes, counted on our own model definitions."""
from __future__ import annotations

import torchvision

from nclib import measure, models
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment


@experiment("overview-sizes", dataset="none (model definitions only, no weights)",
            scale="full-size models, one 224x224 (or 28x28) sample",
            summary="params, MACs and fp32 bytes of LeNets, VGG-16, MobileNet vs the lecture")
def overview_sizes(run: Run) -> None:
    han, dc, mob = table("han2015"), table("deep-compression"), table("mobilenet")
    lenets = [("LeNet-300-100", models.LeNet300100(), (1, 28, 28)),
              ("LeNet-5", models.LeNet5(), (1, 28, 28))]
    for label, model, shape in lenets:
        params = measure.count_params(model)
        size = measure.storage_bytes(model, "dense_fp32")
        run.row(f"{label} params", han.row(f"{label} Ref")["params"], params, "params")
        run.row(f"{label} fp32 size", dc.row(f"{label} Ref")["size_bytes"], size, "bytes")
        run.row(f"{label} MACs", None, measure.count_macs(model, shape).total, "MACs")
        run.claim_close(f"{label} parameters match Han et al. 2015", params,
                        han.row(f"{label} Ref")["params"], 0.01)
    vgg = torchvision.models.vgg16()
    vgg_params = measure.count_params(vgg)
    vgg_macs = measure.count_macs(vgg, (3, 224, 224)).total
    run.row("VGG-16 params", mob.row("VGG 16")["million_params"] * 1e6, vgg_params, "params")
    run.row("VGG-16 MACs", mob.row("VGG 16")["million_mult_adds"] * 1e6, vgg_macs, "MACs")
    run.row("VGG-16 fp32 size", dc.row("VGG-16 Ref")["size_bytes"],
            measure.storage_bytes(vgg, "dense_fp32"), "bytes")
    run.claim_close("VGG-16 parameters", vgg_params, 138e6, 0.02)
    run.claim_close("VGG-16 MACs", vgg_macs, 15300e6, 0.02)
    mnet = models.MobileNetV1()
    m_params = measure.count_params(mnet)
    m_macs = measure.count_macs(mnet, mnet.input_shape).total
    run.row("MobileNet v1 params", mob.row("MobileNet")["million_params"] * 1e6, m_params, "params")
    run.row("MobileNet v1 MACs", mob.row("MobileNet")["million_mult_adds"] * 1e6, m_macs, "MACs")
    run.claim_close("MobileNet v1 parameters", m_params, 4.2e6, 0.01)
    run.claim_close("MobileNet v1 MACs", m_macs, 569e6, 0.01)
