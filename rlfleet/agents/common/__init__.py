"""What every agent shares: the actor loop (:mod:`.actor`), the learner loop (:mod:`.learner`),
the evaluator (:mod:`.evaluator`), checkpoints (:mod:`.checkpoint`), networks as greedy policies
(:mod:`.networks`) and the shared config sections (:mod:`.sections`)."""
