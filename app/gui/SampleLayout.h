#pragma once

#include "wfm/Snapshot.h"

#include <array>
#include <vector>

namespace wfm {

/// Placement of several clouds side by side in a grid (display only: cloud k is shifted along
/// its first two axes so that centres[k] lands on the centre of cell k).
struct GridLayout
{
    int columns = 1;
    float cell = 1.0f; ///< spacing between cell centres, data units
    std::vector<std::array<float, 2>> centres; ///< per cloud: the point put at its cell's centre
};

/// A grid for `snapshot` (square-ish; each cloud centred on its bounding box in `snapshot`,
/// cells as large as the largest cloud plus a margin); `alsoFits` (optional) is another
/// snapshot of the same clouds (e.g. another trajectory frame) the cells must hold too.
GridLayout gridFor(const CloudSnapshot& snapshot, const CloudSnapshot* alsoFits = nullptr);

/// The coordinates a 3-D view shows of data with more than 3 (e.g. niches in PC space): a copy
/// of `snapshot` holding coordinates axes[0], axes[1], axes[2] (an axis outside [0, dim) falls
/// back to its position). Data of 3 or fewer coordinates is returned as it is.
CloudSnapshot selectCoordinates(const CloudSnapshot& snapshot, const std::array<int, 3>& axes);

/// Copy of `snapshot` with cloud k moved to cell k of `grid` (row-major, rows going down).
/// Clouds of 1 dimension are lifted to 2.
CloudSnapshot arrangeInGrid(const CloudSnapshot& snapshot, const GridLayout& grid);

} // namespace wfm
