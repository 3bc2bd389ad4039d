/*===- runtime.h - The C ABI that compiled training programs call -*- C -*-===*
 *
 * s1f-lower-to-runtime turns every rank program of a planned module into a
 * native function `void s1f_rank_<r>(s1f_rt_rank *)` whose body is the
 * rank's actions in order, each a call below; and a `main` that registers
 * those functions and hands the module's runtime graph and plan to
 * s1f_rt_main, the trainer. Every symbol is s1f_rt_*, and no C++ type
 * crosses: the rank is opaque, the rest are integers and C strings.
 *
 * The action calls do not return errors: the first failure is kept by the
 * rank, later calls do nothing, and the runtime reports it (rank, action and
 * cause) once the program returns. So generated code is straight-line.
 *
 *===----------------------------------------------------------------------===*/

#ifndef SEQ1F1B_RUNTIME_H
#define SEQ1F1B_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One rank's state during a training step (opaque). */
typedef struct s1f_rt_rank s1f_rt_rank;

/* A rank's compiled program: runs once per step. */
typedef void (*s1f_rt_program)(s1f_rt_rank *rank);

/* Compute actions on (stage, micro-batch, chunk): forward, full backward,
 * input-gradient backward (I) and weight-gradient backward (W). */
void s1f_rt_forward(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                    int32_t chunk);
void s1f_rt_backward(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                     int32_t chunk);
void s1f_rt_backward_input(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                           int32_t chunk);
void s1f_rt_backward_weight(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                            int32_t chunk);

/* Point-to-point messages with the pipeline rank `peer`: an activation
 * (forward) or a gradient (backward) of (stage, micro-batch, chunk). */
void s1f_rt_send_f(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                   int32_t chunk, int32_t peer);
void s1f_rt_recv_f(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                   int32_t chunk, int32_t peer);
void s1f_rt_send_b(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                   int32_t chunk, int32_t peer);
void s1f_rt_recv_b(s1f_rt_rank *rank, int32_t stage, int32_t mb,
                   int32_t chunk, int32_t peer);

/* The end of the rank's program: when it returns, the runtime sums the
 * gradients across ranks, clips them and takes the AdamW step. */
void s1f_rt_optimizer_step(s1f_rt_rank *rank);

/* Registers pipeline rank `rank`'s program; before s1f_rt_main. */
void s1f_rt_register_program(int32_t rank, s1f_rt_program program);

/* The trainer of a compiled plan: `graph_json` is the runtime graph with
 * the compiler's stage cut; `plan_json` has the rank programs as schedule
 * text ("schedule_csv"), the chunk bounds ("chunk_bounds"), the sequences
 * per micro-batch ("micro_batch_size") and a name ("model"). Parses the
 * command line (--help lists it), trains, and returns the exit status. */
int32_t s1f_rt_main(int32_t argc, char **argv, const char *graph_json,
                    const char *plan_json);

#ifdef __cplusplus
}
#endif

#endif /* SEQ1F1B_RUNTIME_H */
