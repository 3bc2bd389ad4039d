// A planned module becomes a program over the runtime's C ABI: a function per
// rank whose calls are its actions in order, the graph and the plan as string
// constants, and main. --mlir-to-llvmir writes it as LLVM IR.

// RUN: seq1f1b-translate --import-hf-config %examples/gpt-tiny.json --seq-len 16 \
// RUN:   | seq1f1b-opt --s1f-pipeline="stages=2 chunks=2 microbatches=1 schedule=seq1f1b" --s1f-lower-to-runtime \
// RUN:   | FileCheck %s
// RUN: seq1f1b-translate --import-hf-config %examples/gpt-tiny.json --seq-len 16 \
// RUN:   | seq1f1b-opt --s1f-pipeline="stages=2 chunks=2 microbatches=1 schedule=seq1f1b" --s1f-lower-to-runtime \
// RUN:   | seq1f1b-translate --mlir-to-llvmir | FileCheck %s --check-prefix=IR

// CHECK-NOT: llm.
// CHECK-NOT: pipe.
// CHECK-DAG: llvm.func @s1f_rt_forward(!llvm.ptr, i32, i32, i32)
// CHECK-DAG: llvm.func @s1f_rt_send_f(!llvm.ptr, i32, i32, i32, i32)
// CHECK-DAG: llvm.func @s1f_rt_main(i32, !llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK-DAG: llvm.mlir.global internal constant @s1f_graph("{{.*}}seq1f1b-graph{{.*}}\22stages\22{{.*}}")
// CHECK-DAG: llvm.mlir.global internal constant @s1f_plan("{\22chunk_bounds\22:[0,8,16],\22micro_batch_size\22:1,\22model\22:\22gpt2\22,\22schedule_csv\22:\220F0.0,0SEND_F0.0,0F0.1,0SEND_F0.1,0RECV_B0.1,0B0.1,0RECV_B0.0,0B0.0\\n1RECV_F0.0,1F0.0,1RECV_F0.1,1F0.1,1B0.1,1SEND_B0.1,1B0.0,1SEND_B0.0\\n\22}\00")

// Rank 0: F0.0 SEND_F0.0 F0.1 SEND_F0.1 RECV_B0.1 B0.1 RECV_B0.0 B0.0, then
// the optimizer step.
// CHECK-LABEL: llvm.func @s1f_rank_0(%arg0: !llvm.ptr)
// CHECK-DAG: %[[ZERO:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-DAG: %[[ONE:.*]] = llvm.mlir.constant(1 : i32) : i32
// CHECK: llvm.call @s1f_rt_forward(%arg0, %[[ZERO]], %[[ZERO]], %[[ZERO]])
// CHECK-NEXT: llvm.call @s1f_rt_send_f(%arg0, %[[ZERO]], %[[ZERO]], %[[ZERO]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_forward(%arg0, %[[ZERO]], %[[ZERO]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_send_f(%arg0, %[[ZERO]], %[[ZERO]], %[[ONE]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_recv_b(%arg0, %[[ZERO]], %[[ZERO]], %[[ONE]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_backward(%arg0, %[[ZERO]], %[[ZERO]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_recv_b(%arg0, %[[ZERO]], %[[ZERO]], %[[ZERO]], %[[ONE]])
// CHECK-NEXT: llvm.call @s1f_rt_backward(%arg0, %[[ZERO]], %[[ZERO]], %[[ZERO]])
// CHECK-NEXT: llvm.call @s1f_rt_optimizer_step(%arg0)
// CHECK-NEXT: llvm.return
// CHECK-LABEL: llvm.func @s1f_rank_1(%arg0: !llvm.ptr)
// CHECK: llvm.call @s1f_rt_recv_f(
// CHECK-LABEL: llvm.func @main(%arg0: i32, %arg1: !llvm.ptr) -> i32
// CHECK: %[[F0:.*]] = llvm.mlir.addressof @s1f_rank_0 : !llvm.ptr
// CHECK: llvm.call @s1f_rt_register_program(%{{.*}}, %[[F0]])
// CHECK: %[[F1:.*]] = llvm.mlir.addressof @s1f_rank_1 : !llvm.ptr
// CHECK: llvm.call @s1f_rt_register_program(%{{.*}}, %[[F1]])
// CHECK: %[[G:.*]] = llvm.mlir.addressof @s1f_graph : !llvm.ptr
// CHECK: %[[P:.*]] = llvm.mlir.addressof @s1f_plan : !llvm.ptr
// CHECK: %[[RC:.*]] = llvm.call @s1f_rt_main(%arg0, %arg1, %[[G]], %[[P]])
// CHECK: llvm.return %[[RC]] : i32

// IR-DAG: @s1f_graph = internal constant [{{[0-9]+}} x i8] c"{
// IR-DAG: define void @s1f_rank_0(ptr %0)
// IR-DAG: call void @s1f_rt_forward(ptr %0, i32 0, i32 0, i32 0)
// IR-DAG: define i32 @main(i32 %0, ptr %1)
// IR-DAG: declare i32 @s1f_rt_main(i32, ptr, ptr, ptr)
