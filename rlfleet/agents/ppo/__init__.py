"""PPO (Schulman et al. 2017) with GAE, synchronous by default, optionally asynchronous (APPO):
:mod:`.spec`."""
