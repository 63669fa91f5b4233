"""Operations: the fleet's status reading, the dead-letter set, the QR sessions."""
