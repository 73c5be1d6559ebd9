//! `aci-emulator`: a local ARM endpoint that runs container groups as local processes.
