"""Operations: the fleet's status reading and the dead-letter set."""
