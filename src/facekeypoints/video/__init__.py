"""Video and webcam: the tracker (:mod:`.tracker`), keypoint smoothing (:mod:`.smoothing`),
reading and writing video (:mod:`.io`) and the preview window (:mod:`.display`)."""
