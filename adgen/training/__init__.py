"""Closing the loop: preference data, DPO/KTO (and GRPO/RLOO) updates, the training cycle,
rollout of candidates with a traffic cap, the promotion gate and rollback, the scheduler.
"""
