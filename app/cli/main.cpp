#include "wfm/Platform.h"
int main(int argc, char** argv) { wfm::ensureBlasKernel(argc, argv); return 0; }
