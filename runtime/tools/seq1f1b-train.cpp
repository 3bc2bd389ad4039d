//===- seq1f1b-train.cpp - train a model graph on pipelined CPU ranks -----===//
//
// The command line is the runtime's trainer (runtime/src/train/train.cpp),
// which compiled training executables share.
//
//===----------------------------------------------------------------------===//

#include "seq1f1b/runtime/train.h"

int main(int argc, char **argv) { return s1f::rt::trainMain(argc, argv); }
