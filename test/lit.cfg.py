# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "SEQ1F1B"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.seq1f1b_obj_root, "test")
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"
config.substitutions.append(("%examples", os.path.join(config.seq1f1b_src_root, "examples")))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%bench", os.path.join(config.seq1f1b_src_root, "bench")))

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.seq1f1b_tools_dir, config.llvm_tools_dir]
tools = ["seq1f1b-opt", "seq1f1b-translate", "seq1f1b-plan", "seq1f1b-train", "seq1f1b-compile", "split-file", "not", "count"]
llvm_config.add_tool_substitutions(
    [ToolSubst(t, unresolved="ignore") for t in tools], tool_dirs)

# The CUDA backend's benchmarks exist when CMake found a CUDA compiler; their
# command-line checks need no GPU.
if os.path.exists(os.path.join(config.seq1f1b_tools_dir, "s1f-layer-bench")):
    config.available_features.add("cuda")
    llvm_config.add_tool_substitutions(
        [ToolSubst("s1f-layer-bench", unresolved="ignore")],
        [config.seq1f1b_tools_dir])
