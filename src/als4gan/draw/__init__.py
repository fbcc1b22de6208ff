"""Drawing, the lowest layer under select, evaluate, predict and report (numpy, Pillow, matplotlib).

* :mod:`~als4gan.draw.images`: display RGB, overlays, legends, resizing, PNG encoding.
* :mod:`~als4gan.draw.sheet`: the contact sheet (captioned thumbnails, optional masks, legend).
* :mod:`~als4gan.draw.plots`: curves, bars and the confusion matrix as PNG bytes.
* :mod:`~als4gan.draw.crossplots`: the charts comparing runs.
* :mod:`~als4gan.draw.examples`: the image | ground truth | prediction figure.

Nothing here imports torch or another part of als4gan at run time (class tables are passed in).
"""

from __future__ import annotations
