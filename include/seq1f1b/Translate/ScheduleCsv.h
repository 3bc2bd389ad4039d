//===- ScheduleCsv.h - pipe.schedule to and from the schedule text format -===//
#ifndef SEQ1F1B_TRANSLATE_SCHEDULECSV_H
#define SEQ1F1B_TRANSLATE_SCHEDULECSV_H

namespace seq1f1b {

/// Registers `--export-schedule-csv` (the module's pipe.schedule as one CSV
/// row per rank, PyTorch's text format) and `--import-schedule-csv` (a CSV,
/// e.g. PyTorch's compute_only dump, to a verified pipe.schedule with
/// communication added when it has none), with option `--schedule-kind`.
void registerScheduleCsvTranslations();

} // namespace seq1f1b

#endif // SEQ1F1B_TRANSLATE_SCHEDULECSV_H
