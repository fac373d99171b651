// Safety module: evaluation, SSAH, SA-ESS, BD-VAX (files land per method).
