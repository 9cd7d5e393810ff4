// Guarded sampling (guarded_alloc.h): every kind of fault on a guarded
// object ends in one report naming the fault, the object's size and the
// stacks where it was allocated and freed, then abort(). Each case runs
// guard_faults.c (one bug per run, SPANALLOC_GUARD_SAMPLE=1) in a death test,
// with spanalloc preloaded and with it linked in.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char **environ;

namespace {

struct Variant {
  const char *name;
  const char *program;
  const char *preload;  // nullptr: linked
};

const Variant kVariants[] = {
    {"preload", GUARD_FAULTS_PRELOAD, SPANALLOC_SHARED_LIB},
    {"linked", GUARD_FAULTS_LINKED, nullptr},
};

// Runs the program with one bug (in a death test's child: never returns).
[[noreturn]] void RunWithBug(const Variant &v, const char *bug) {
  std::vector<std::string> env;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "SPANALLOC_", 10) != 0) env.push_back(*e);
  env.push_back("SPANALLOC_GUARD_SAMPLE=1");
  if (v.preload) env.push_back(std::string("LD_PRELOAD=") + v.preload);
  std::vector<char *> envp;
  for (auto &s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  char *argv[] = {const_cast<char *>(v.program), const_cast<char *>(bug), nullptr};
  execve(v.program, argv, envp.data());
  perror("execve");
  _exit(127);
}

class Guarded : public testing::TestWithParam<Variant> {};

// Frame lines as backtrace_symbols_fd writes them: "    #0 prog(func+0x12)[0x...]".
#define FRAME(func) "    #0 [^\n]*\\(" func "\\+0x[0-9a-f]+\\)"

TEST_P(Guarded, OverflowIsReportedWithTheAllocatingStack) {
  EXPECT_EXIT(RunWithBug(GetParam(), "overflow"), testing::KilledBySignal(SIGABRT),
              "spanalloc: overflow of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 32-byte block, 0 bytes past its end; "
              "guarded sample\\)\n  allocated at:\n" FRAME("allocate_record"));
}

TEST_P(Guarded, OverflowingReadIsReported) {
  EXPECT_EXIT(RunWithBug(GetParam(), "overflow-read"), testing::KilledBySignal(SIGABRT),
              "spanalloc: overflow of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 32-byte block, 8 bytes past its end; "
              "guarded sample\\)");
}

TEST_P(Guarded, UnderflowIsReported) {
  EXPECT_EXIT(RunWithBug(GetParam(), "underflow"), testing::KilledBySignal(SIGABRT),
              "spanalloc: underflow of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 4096-byte block, 1 byte before its "
              "start; guarded sample\\)\n  allocated at:\n" FRAME("allocate_record"));
}

TEST_P(Guarded, UseAfterFreeIsReportedWithBothStacks) {
  EXPECT_EXIT(RunWithBug(GetParam(), "use-after-free"), testing::KilledBySignal(SIGABRT),
              "spanalloc: use after free of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 32-byte block, 8 bytes into it, "
              "freed; guarded sample\\)\n  allocated at:\n" FRAME("allocate_record") ".*\n  freed at:\n" FRAME(
                  "release_record"));
}

TEST_P(Guarded, ReadAfterFreeIsReported) {
  EXPECT_EXIT(RunWithBug(GetParam(), "use-after-free-read"), testing::KilledBySignal(SIGABRT),
              "spanalloc: use after free of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 32-byte block, 0 bytes into it, "
              "freed; guarded sample\\)");
}

TEST_P(Guarded, DoubleFreeIsReportedWithBothStacks) {
  EXPECT_EXIT(RunWithBug(GetParam(), "double-free"), testing::KilledBySignal(SIGABRT),
              "spanalloc: double free of 0x[0-9a-f]+ \\(free: 32-byte block, already free; guarded sample\\)\n"
              "  allocated at:\n" FRAME("allocate_record") ".*\n  freed at:\n" FRAME("release_record"));
}

TEST_P(Guarded, ReallocOfAFreedObjectIsReported) {
  EXPECT_EXIT(RunWithBug(GetParam(), "realloc-after-free"), testing::KilledBySignal(SIGABRT),
              "spanalloc: double free of 0x[0-9a-f]+ \\(realloc: 32-byte block, already free; guarded "
              "sample\\)");
}

TEST_P(Guarded, AlignedObjectsKeepTheirAlignmentAndTheirGuard) {
  EXPECT_EXIT(RunWithBug(GetParam(), "aligned-overflow"), testing::KilledBySignal(SIGABRT),
              "spanalloc: overflow of 0x[0-9a-f]+ \\(access at 0x[0-9a-f]+: 256-byte block, 0 bytes past its end; "
              "guarded sample\\)");
}

TEST_P(Guarded, OtherFaultsReachTheProgramsHandler) {
  EXPECT_EXIT(RunWithBug(GetParam(), "chain"), testing::ExitedWithCode(3), "program handler saw the fault");
}

TEST_P(Guarded, OtherFaultsKeepTheirDefaultAction) {
  EXPECT_EXIT(RunWithBug(GetParam(), "segv-not-ours"), testing::KilledBySignal(SIGSEGV), "");
}

TEST_P(Guarded, CorrectProgramsRunCleanWithEveryAllocationSampled) {
  EXPECT_EXIT(RunWithBug(GetParam(), "none"), testing::ExitedWithCode(0), "");
}

INSTANTIATE_TEST_SUITE_P(Sampling, Guarded, testing::ValuesIn(kVariants),
                         [](const testing::TestParamInfo<Variant> &i) { return std::string(i.param.name); });

}  // namespace
