//! Sharded games under `mpirun` (needs `--features mpi` and an MPI installation).
