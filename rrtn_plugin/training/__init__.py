"""Training and measuring the network: :mod:`.train` fits checkpoints on clean footage with
synthetic damage (resumable), :mod:`.evaluate` compares the model with the damaged input and a
classical temporal median, and :mod:`.quality` holds the metrics (PSNR, SSIM, warp error,
damage-mask precision and recall). :mod:`.choices` holds what a run can be started with (stages,
losses), without torch, for front ends to show."""
