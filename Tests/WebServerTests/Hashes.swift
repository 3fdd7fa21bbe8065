/// A bcrypt hash of "U*U" (crypt_blowfish's test vector), valid for every test that needs one.
let knownHash = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
