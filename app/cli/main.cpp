// wfm: the WFM Studio command line. Every command prints JSON on stdout; errors go to stderr as
// one line. Exit codes: 0 success, 1 run failure (bad data, numerical failure), 2 usage error.

#include "Cli.h"
#if WFM_HAVE_RENDER
#include "render/Render.h"
#endif

#include "wfm/BuildInfo.h"
#include "wfm/Error.h"
#include "wfm/Log.h"
#include "wfm/Platform.h"
#include "wfm/io/Readers.h"

#include <torch/torch.h>

#include <iostream>
#include <map>

int main(int argc, char** argv)
{
    wfm::ensureBlasKernel(argc, argv);
    wfm::initThreads();
    wfm::io::registerReaders();

    CLI::App app { "WFM Studio command line: Wasserstein flow matching over families of distributions",
        "wfm" };
    app.set_version_flag("--version",
        std::string("wfm ") + WFM_VERSION_STRING + " (" + wfm::torchVersionString() + ", "
            + WFM_BUILD_TYPE + ")");
    app.require_subcommand(1);
    app.fallthrough();
    auto* help = app.add_subcommand("help", "Show the commands, or the help of one command");
    std::string helpTopic;
    help->add_option("command", helpTopic, "Command to describe");

    std::map<CLI::App*, wfm::cli::Runner> runners;
    auto add = [&](const std::function<wfm::cli::Runner(CLI::App&)>& f) {
        const size_t before = app.get_subcommands({}).size();
        auto run = f(app);
        auto subs = app.get_subcommands({});
        runners[subs[before]] = run;
        (void)before;
    };
    add(wfm::cli::addOtCommand);
    add(wfm::cli::addBuresCommand);
    add(wfm::cli::addBenchCommand);
    add(wfm::cli::addInspectCommand);
    add(wfm::cli::addTrainCommand);
    add(wfm::cli::addGenerateCommand);
    add(wfm::cli::addEvaluateCommand);
    add(wfm::cli::addConfigCommand);
#if WFM_HAVE_RENDER
    add(wfm::cli::addRenderCommand); // only when built with the GUI (Qt 6 + VTK)
#endif

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "wfm: " << e.what() << " (see 'wfm help')" << std::endl;
        return 2;
    }

    if (help->parsed()) {
        if (helpTopic.empty()) {
            app.clear(); // help() of a parsed app describes its parsed subcommand
            std::cout << app.help();
            return 0;
        }
        for (auto* sub : app.get_subcommands({})) {
            if (sub->get_name() == helpTopic) {
                std::cout << sub->help();
                return 0;
            }
        }
        std::cerr << "wfm: unknown command '" << helpTopic << "' (see 'wfm help')" << std::endl;
        return 2;
    }

    try {
        for (auto& [sub, run] : runners) {
            if (sub->parsed()) {
                return run();
            }
        }
    } catch (const wfm::cli::UsageError& e) {
        std::cerr << "wfm: " << e.what() << std::endl;
        return 2;
    } catch (const wfm::Error& e) {
        std::cerr << "wfm: error: " << e.what() << std::endl;
        return 1;
    } catch (const c10::Error& e) {
        std::cerr << "wfm: error: " << e.what_without_backtrace() << std::endl;
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "wfm: error: " << e.what() << std::endl;
        return 1;
    }
    return 2;
}
