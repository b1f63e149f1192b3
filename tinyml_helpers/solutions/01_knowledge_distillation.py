# Worked solutions for notebook 01 (knowledge distillation), one block per exercise cell.
# tests/test_solutions.py swaps each block into its exercise cell and runs the notebook.
# flake8: noqa

# SOLUTION 01.soft_labels
# EXERCISE 01.soft_labels
# q_i = exp(z_i / T) / sum_j exp(z_j / T), computed for every row of `logits`.
def my_soft_labels(logits, temperature):
    '''logits: tensor (batch, n_classes); temperature: T > 0. Return a tensor of the same shape.'''
    # Divide by T first, then a softmax over the class axis (the last one).
    return torch.softmax(logits / temperature, dim=-1)


check_soft_labels(my_soft_labels)

# SOLUTION 01.kd_loss
# EXERCISE 01.kd_loss
# T**2 * KL(teacher || student), both softened by T, averaged over the batch.
# F.kl_div(input, target, reduction=...) wants the student's LOG-probabilities as input.
def my_kd_loss(student_logits, teacher_logits, temperature):
    '''student_logits, teacher_logits: tensors (batch, n_classes). Return a scalar tensor.'''
    T = temperature
    log_q_student = F.log_softmax(student_logits / T, dim=1)   # input: log-probabilities
    q_teacher = F.softmax(teacher_logits / T, dim=1)           # target: probabilities
    # batchmean = sum over classes, mean over clips; T**2 keeps the gradient scale (Hinton et al. 2015)
    return T**2 * F.kl_div(log_q_student, q_teacher, reduction="batchmean")


check_kd_loss(my_kd_loss)
